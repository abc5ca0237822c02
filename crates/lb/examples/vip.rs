//! One weft-lb VIP in front of fixed backends, for bench/lb.sh.
//!
//! Usage: vip LISTEN_ADDR THREADS BACKEND_ADDR...

use std::net::SocketAddr;

use weft_lb::{Backend, Vip, VipConfig};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()?;
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    let backends = args
        .enumerate()
        .map(|(i, addr)| {
            Ok(Backend {
                id: format!("backend_{i}"),
                addr: addr.parse()?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(async {
            let vip = Vip::bind(listen, VipConfig::default()).await?;
            vip.set_backends(backends);
            println!("vip listening on {}", vip.local_addr());
            tokio::signal::ctrl_c().await?;
            vip.close().await;
            println!("{:?}", vip.stats());
            anyhow::Ok(())
        })
}
