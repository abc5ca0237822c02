#!/bin/sh
# Startup task: make sure the work directory exists before the worker runs.
mkdir -p "${WORK_DIR:-./work}"
