"""A real XML-RPC client for the API tests: Python's xmlrpc.client, as Raven's tools use it.

Reads one JSON job (or a list of jobs) on stdin and prints its answers (or a list of them):
  {"transport": "tcp", "url": "http://localhost:PORT/", "calls": [["GetSSHKeys", []], ...]}
  {"transport": "unix-http10", "socket": "/path", "calls": [...]}
      one raw "POST / HTTP/1.0" per call over AF_UNIX (as PlanetLab's forward_api_calls does),
      the reply read to EOF, split at the blank line and parsed with xmlrpc.client.loads
  {"transport": "tcp-http10", "host": "127.0.0.1", "port": N, "calls": [...]}
      the same raw HTTP/1.0 request over TCP, with the headers Python 2.5's xmlrpclib sent
  {"transport": "unix-proxy", "socket": "/path", "calls": [...]}
      ServerProxy over a Unix-socket transport (HTTP/1.1)
  "gzip": true (tcp only) makes ServerProxy gzip every request body (Content-Encoding: gzip)
Each answer is {"ok": value} | {"fault": [code, text]} | {"http": [status, reason]} | {"error": text}.
"""
import base64
import datetime
import http.client
import json
import socket
import sys
import xmlrpc.client


def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bytes, xmlrpc.client.Binary)):
        data = v.data if isinstance(v, xmlrpc.client.Binary) else v
        return {"$base64": base64.b64encode(data).decode()}
    if isinstance(v, (datetime.datetime, xmlrpc.client.DateTime)):
        return {"$datetime": str(v)}
    return v


def answer(fn):
    try:
        return {"ok": plain(fn())}
    except xmlrpc.client.Fault as f:
        return {"fault": [f.faultCode, f.faultString]}
    except xmlrpc.client.ProtocolError as e:
        return {"http": [e.errcode, e.errmsg]}
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"error": "%s: %s" % (type(e).__name__, e)}


def raw_http10(address, method, args):
    """One call as Python 2.5's xmlrpclib made it: HTTP/1.0, its four headers, the reply read to EOF."""
    if method == "":
        # dumps() writes no <methodCall> for an empty name (neither did 2.5's); a raw client can.
        text = xmlrpc.client.dumps(tuple(args), "PLACEHOLDER").replace("<methodName>PLACEHOLDER<", "<methodName><", 1)
    else:
        text = xmlrpc.client.dumps(tuple(args), method)
    body = text.encode("utf-8")
    if isinstance(address, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        host = b"localhost"
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        host = b"localhost:%d" % address[1]
    s.settimeout(10)
    s.connect(address)
    s.sendall(
        b"POST / HTTP/1.0\r\nHost: " + host + b"\r\nUser-Agent: xmlrpclib.py/1.0.1 (by www.pythonware.com)\r\n"
        b"Content-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    chunks = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    s.close()
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if status[1] != b"200":
        raise xmlrpc.client.ProtocolError(path, int(status[1]), status[2].decode(), {})
    if b"content-type: text/xml" not in head.lower():
        raise ValueError("reply is not text/xml: %r" % head)
    return xmlrpc.client.loads(payload.decode("utf-8"))[0][0]


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.socket_path = path

    def make_connection(self, host):
        return UnixConnection(self.socket_path)


def run(job):
    transport = job["transport"]
    out = []
    if transport == "tcp":
        t = xmlrpc.client.Transport()
        if job.get("gzip"):
            t.encode_threshold = 0
        proxy = xmlrpc.client.ServerProxy(job["url"], transport=t)
    elif transport == "unix-proxy":
        proxy = xmlrpc.client.ServerProxy("http://localhost/", transport=UnixTransport(job["socket"]))
    for method, args in job["calls"]:
        if transport == "unix-http10":
            out.append(answer(lambda: raw_http10(job["socket"], method, args)))
        elif transport == "tcp-http10":
            out.append(answer(lambda: raw_http10((job["host"], job["port"]), method, args)))
        else:
            out.append(answer(lambda: getattr(proxy, method)(*args)))
    return out


def main():
    job = json.load(sys.stdin)
    json.dump([run(j) for j in job] if isinstance(job, list) else run(job), sys.stdout)


if __name__ == "__main__":
    main()
