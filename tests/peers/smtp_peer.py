#!/usr/bin/env python3
"""A small SMTP/LMTP server for Postern's smtp/lmtp client tests.

It answers per recipient, which smtp-sink cannot do:
  RCPT to a local part starting with "soft" -> 450 4.2.1 (mailbox busy)
  RCPT to a local part starting with "hard" -> 550 5.1.1 (user unknown)
  (LMTP) after DATA, a local part starting with "full" -> 552 5.2.2
  anything else -> accepted.
Every accepted message is written to DIR/N.eml: "SESSION k" (the
connection's number), the envelope ("MAIL FROM:..." and "RCPT TO:..."
lines as received), an empty line, then the content with dot-stuffing
removed, CRLF as received. A QUIT in session k creates DIR/quit-k.

With --chunking it also announces CHUNKING and takes BDAT (RFC 3030);
the stored envelope then ends with a "BDAT" line.

Usage: smtp_peer.py (--listen HOST:PORT | --unix PATH) --dir DIR
       [--lmtp] [--no-8bitmime] [--chunking] [--size N]
"""

import argparse
import os
import socketserver
import threading

COUNT = 0
SESSIONS = 0
LOCK = threading.Lock()


def local_part(line):
    addr = line.split(":", 1)[1].strip()
    addr = addr.split(">", 1)[0].lstrip("<")
    return addr.split("@", 1)[0].lower(), addr


class Handler(socketserver.StreamRequestHandler):
    def send(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def store(self, mail, rcpts, body, how):
        """Writes one message and sends the replies to its end."""
        global COUNT
        opts = self.server.opts
        with LOCK:
            COUNT += 1
            n = COUNT
        env = ["SESSION %d" % self.session, mail] + [r[0] for r in rcpts] + ([how] if how else [])
        path = os.path.join(opts.dir, "%d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(("\n".join(env) + "\n\n").encode())
            f.write(b"".join(body))
        os.rename(path + ".tmp", path)
        if opts.lmtp:
            for _, lp, addr in rcpts:
                if lp.startswith("full"):
                    self.send("552 5.2.2 <%s>: mailbox full" % addr)
                else:
                    self.send("250 2.0.0 <%s> delivered as %d" % (addr, n))
        else:
            self.send("250 2.0.0 Ok: queued as PEER%d" % n)

    def handle(self):
        global SESSIONS
        opts = self.server.opts
        with LOCK:
            SESSIONS += 1
            self.session = SESSIONS
        self.send("220 peer.test ESMTP test peer")
        mail = None
        rcpts = []
        chunks = []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = text.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                if (verb == "LHLO") != opts.lmtp:
                    self.send("500 5.5.1 wrong greeting command")
                    continue
                exts = ["PIPELINING", "SIZE %d" % opts.size, "ENHANCEDSTATUSCODES", "DSN"]
                if not opts.no_8bitmime:
                    exts.append("8BITMIME")
                if opts.chunking:
                    exts.append("CHUNKING")
                lines = ["peer.test"] + exts
                for l in lines[:-1]:
                    self.send("250-" + l)
                self.send("250 " + lines[-1])
            elif verb == "HELO":
                self.send("250 peer.test")
            elif verb == "MAIL":
                mail, rcpts, chunks = text, [], []
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                lp, addr = local_part(text)
                if lp.startswith("soft"):
                    self.send("450 4.2.1 <%s>: mailbox busy, try later" % addr)
                elif lp.startswith("hard"):
                    self.send("550 5.1.1 <%s>: Recipient address rejected: User unknown" % addr)
                else:
                    rcpts.append((text, lp, addr))
                    self.send("250 2.1.5 Ok")
            elif verb == "BDAT" and opts.chunking:
                words = text.split()
                size = int(words[1])
                last = len(words) > 2 and words[2].upper() == "LAST"
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    return
                chunks.append(chunk)
                if not last:
                    self.send("250 2.0.0 %d bytes received" % size)
                elif not rcpts:
                    self.send("554 5.5.1 Error: no valid recipients")
                else:
                    self.store(mail, rcpts, chunks, "BDAT")
                    mail, rcpts, chunks = None, [], []
            elif verb == "DATA":
                if not rcpts:
                    self.send("554 5.5.1 Error: no valid recipients")
                    continue
                self.send("354 End data with <CR><LF>.<CR><LF>")
                body = []
                while True:
                    l = self.rfile.readline(100000)
                    if not l:
                        return
                    if l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    body.append(l)
                self.store(mail, rcpts, body, None)
                mail, rcpts = None, []
            elif verb == "RSET":
                mail, rcpts, chunks = None, [], []
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                open(os.path.join(opts.dir, "quit-%d" % self.session), "w").close()
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")


class Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Unix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen")
    p.add_argument("--unix")
    p.add_argument("--dir", required=True)
    p.add_argument("--lmtp", action="store_true")
    p.add_argument("--no-8bitmime", action="store_true")
    p.add_argument("--chunking", action="store_true")
    p.add_argument("--size", type=int, default=10240000)
    opts = p.parse_args()
    if opts.unix:
        server = Unix(opts.unix, Handler)
    else:
        host, port = opts.listen.rsplit(":", 1)
        server = Tcp((host, int(port)), Handler)
    server.opts = opts
    server.serve_forever()


if __name__ == "__main__":
    main()
