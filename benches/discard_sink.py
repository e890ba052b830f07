"""A sink that reads every byte of every request body and keeps none: for uploads larger
than nginx can buffer on tmpfs (compare.sh's huge-file work). Answers the upload call with
fixed JSON and appends "<seconds> <body bytes>" per request to the log file.
argv: PORT LOGFILE"""
import socket
import sys
import threading
import time

ANSWER = (b'{"code":"OK","msg":"OK","data":{"success":true,"file_id":"1889613341347389440",'
          b'"task_id":"1889613340219121664","message":"ok","results":[{"success":true,'
          b'"file_id":"1889613341347389440","message":"ok"}]}}')


def serve(conn, log):
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    pending = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, pending = pending.split(b"\r\n\r\n", 1)
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get(b"content-length", b"0"))
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                conn.sendall(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\n\r\n")
                return
            got = min(len(pending), length)
            pending = pending[got:]
            while got < length:
                n = conn.recv_into(view, min(len(buf), length - got))
                if not n:
                    return
                got += n
            with open(log, "a") as f:
                f.write(f"{time.time():.3f} {got}\n")
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)


def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, log), daemon=True).start()


main()
