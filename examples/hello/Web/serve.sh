#!/bin/sh
# Answers every HTTP request with this instance's id and the configured greeting.
exec python3 -c '
import http.server, os
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s: %s\n" % (os.environ.get("HELLO_INSTANCE", "?"), os.environ.get("HELLO_GREETING", ""))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["HELLO_PORT"])), Hello).serve_forever()
'
