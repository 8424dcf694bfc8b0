#!/usr/bin/env python3
"""Transactions per second: C connections (one process each), each sending
P pipelined `MULTI, SET k v x10, EXEC` transactions per round trip, for
SECS seconds. Replies have a fixed size, so the client only counts bytes.
usage: txn_load.py PORT [C=50 P=1 SECS=5]"""
import multiprocessing as mp, socket, sys, time

def worker(port, p, secs, q, idx):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    one = b"*1\r\n$5\r\nMULTI\r\n"
    for i in range(10):
        k = b"txn:%d:%d" % (idx, i)
        one += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nval\r\n" % (len(k), k)
    one += b"*1\r\n$4\r\nEXEC\r\n"
    reply = len(b"+OK\r\n") + 10 * len(b"+QUEUED\r\n") + len(b"*10\r\n") + 10 * len(b"+OK\r\n")
    batch, want = one * p, reply * p
    n, end = 0, time.time() + secs
    while time.time() < end:
        s.sendall(batch)
        got = 0
        while got < want:
            b = s.recv(1 << 20)
            if not b:
                raise SystemExit("closed")
            got += len(b)
        n += p
    q.put(n)

if __name__ == "__main__":
    port = int(sys.argv[1]); c = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    p = int(sys.argv[3]) if len(sys.argv) > 3 else 1; secs = float(sys.argv[4]) if len(sys.argv) > 4 else 5
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(port, p, secs, q, i)) for i in range(c)]
    t = time.time()
    for x in ps: x.start()
    total = sum(q.get() for _ in ps)
    for x in ps: x.join()
    print("%d transactions in %.2fs: %.0f txn/s" % (total, secs, total / secs))
