#!/usr/bin/env python3
"""Runs the README's HTTP service (docs/examples/hello_http.cpp) as a user would and checks it:
the routes, a 404, a 405, a body echoed, then SIGTERM ends it cleanly. usage: hello_http_check.py BINARY"""
import http.client
import signal
import subprocess
import sys

proc = subprocess.Popen([sys.argv[1], "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
try:
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on 127.0.0.1:"), line
    port = int(line.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def ask(method, path, body=None):
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, r.read().decode(), r.getheader("Allow")

    assert ask("GET", "/hello/weft") == (200, "Hello, weft!\n", None)
    assert ask("POST", "/echo", body="ping" * 1000) == (200, "ping" * 1000, None)
    assert ask("GET", "/nowhere")[0] == 404
    status, _, allow = ask("GET", "/echo")
    assert (status, allow) == (405, "POST"), (status, allow)
    conn.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, proc.returncode
    print("hello_http: ok")
finally:
    if proc.poll() is None:
        proc.kill()
