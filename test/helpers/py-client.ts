// Python's own XML-RPC client, over TCP and over the Unix socket (as NodeManager's clients do),
// for the tests of installed packages (test/rpm, test/boot: also run inside a container):
//   python3 -c GETSSHKEYS_PY PORT [SOCKET]   prints {"tcp": ..., "unix": ...} (no "unix" without SOCKET)
export const GETSSHKEYS_PY = `
import http.client, json, socket, sys, xmlrpc.client
port, sock = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
out = {"tcp": xmlrpc.client.ServerProxy("http://127.0.0.1:%s/" % port).GetSSHKeys()}
if sock:
    class UnixConnection(http.client.HTTPConnection):
        def __init__(self, path):
            http.client.HTTPConnection.__init__(self, "localhost")
            self.unix_path = path
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(self.unix_path)
    class UnixTransport(xmlrpc.client.Transport):
        def __init__(self, path):
            xmlrpc.client.Transport.__init__(self)
            self.unix_path = path
        def make_connection(self, host):
            return UnixConnection(self.unix_path)
    out["unix"] = xmlrpc.client.ServerProxy("http://localhost/", transport=UnixTransport(sock)).GetSSHKeys()
print(json.dumps(out))
`;
