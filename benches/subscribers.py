#!/usr/bin/env python3
"""N idle subscribers that read and discard everything (a cheap stand-in
for N redis-cli SUBSCRIBE processes). usage: subscribers.py PORT N CHANNEL"""
import selectors, socket, sys

port, n, chan = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
sel = selectors.DefaultSelector()
cmd = b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(chan), chan)
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(cmd)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if not key.fileobj.recv(1 << 20):
            sys.exit(0)
