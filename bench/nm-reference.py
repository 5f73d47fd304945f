#!/usr/bin/env python3
"""A NodeManager-style XML-RPC server: the reference sliceid's API is measured against.

Built the way PlanetLab's NodeManager serves its API (nodemanager api.py): the standard library's
SimpleXMLRPCServer mixed with socketserver.ThreadingMixIn (one thread per connection), a request
handler whose _dispatch runs every call under one global lock (NodeManager's
@database.synchronized), and GetSSHKeys building its answer from the sliver database on each call.
Request logging is off.

    python3 bench/nm-reference.py --data FILE [--port N] [--keep-alive]

FILE is either a JSON object {slice name: keys joined by "\\n"} or an XML-RPC methodResponse whose
single parameter is that struct (e.g. the bytes sliceid answered to GetSSHKeys). The server
listens on 127.0.0.1:N (0 picks a free port) and prints one JSON line
{"msg": "ready", "port": N, "pid": P, "slices": S} on stdout once it accepts connections.
Stdlib only; SIGTERM or SIGINT stops it.

HTTP: NodeManager's handler speaks HTTP/1.0 and closes the connection after each reply (Python's
default protocol_version), and so does this one by default. --keep-alive sets protocol_version to
HTTP/1.1 so a client can reuse connections: the reference's best case, which the benchmark uses
(a load generator with keep-alive measures the close-per-reply mode wrongly).
"""

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

# NodeManager's database.py: one lock every API call and every database change goes through.
_db_lock = threading.RLock()


def synchronized(fn):
    def sync_fn(*args, **kw_args):
        with _db_lock:
            return fn(*args, **kw_args)

    sync_fn.__doc__ = fn.__doc__
    sync_fn.__name__ = fn.__name__
    return sync_fn


# The sliver database: name -> record, as NodeManager keeps it (database.db).
db = {}

api_method_dict = {}


def export_to_api(fn):
    api_method_dict[fn.__name__] = fn
    return fn


@export_to_api
def GetSSHKeys():
    """Return an dictionary mapping slice names to SSH keys"""
    keydict = {}
    for rec in db.values():
        if 'keys' in rec and rec['keys']:
            keydict[rec['name']] = rec['keys']
    return keydict


class APIRequestHandler(SimpleXMLRPCRequestHandler):
    # NodeManager overrides _dispatch (deprecated but what it does) and synchronizes it.
    @synchronized
    def _dispatch(self, method_name_unicode, args):
        method_name = str(method_name_unicode)
        try:
            method = api_method_dict[method_name]
        except KeyError:
            names = sorted(api_method_dict.keys())
            raise xmlrpc.client.Fault(
                100, 'Invalid API method %s.  Valid choices are %s' % (method_name, ', '.join(names))
            )
        if len(args) != 0:
            raise xmlrpc.client.Fault(101, 'Invalid argument count: got %d, expecting %d.' % (len(args), 0))
        try:
            return method(*args)
        except Exception as err:  # NodeManager turns anything else into fault 104
            raise xmlrpc.client.Fault(104, 'Error in call: %s' % err)

    def log_message(self, format, *args):  # quiet
        pass


class APIServer_INET(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    allow_reuse_address = True
    daemon_threads = True


def load_data(path):
    with open(path, 'rb') as f:
        raw = f.read()
    text = raw.lstrip()
    if text.startswith(b'{'):
        data = json.loads(raw.decode('utf-8'))
    else:
        params, _method = xmlrpc.client.loads(raw)
        if len(params) != 1:
            raise ValueError('%s: expected one parameter in the methodResponse' % path)
        data = params[0]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError('%s: expected a struct of slice name -> keys string' % path)
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', required=True, help='JSON object or XML-RPC methodResponse file')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--keep-alive', action='store_true', help='HTTP/1.1 persistent connections')
    opts = ap.parse_args()

    for name, keys in load_data(opts.data).items():
        db[name] = {'name': name, 'keys': keys, 'type': 'sliver.LXC'}

    if opts.keep_alive:
        APIRequestHandler.protocol_version = 'HTTP/1.1'
    server = APIServer_INET(('127.0.0.1', opts.port), requestHandler=APIRequestHandler, logRequests=False,
                            allow_none=False)

    def stop(_signum, _frame):
        # shutdown() waits for serve_forever, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sys.stdout.write(json.dumps({'msg': 'ready', 'port': server.server_address[1], 'pid': os.getpid(),
                                 'slices': len(db), 'http': APIRequestHandler.protocol_version}) + '\n')
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
