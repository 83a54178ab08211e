#!/usr/bin/python3
"""A smarthost for the SMTP client's tests: aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1.

Prints `READY <port>` on stdout once it listens, then serves until killed. Each message it
accepts is written to --out as `<n>.eml` (the bytes as received, dot-stuffing undone, CRLF kept)
and `<n>.json` (the envelope and how the session went). `transcript.log` in --out has every
command line the client sent, in order, across sessions.

Fault injection, so the tests can see what the client does with each answer:
  --rcpt-reply ADDR=REPLY   answer RCPT TO:<ADDR> with REPLY (repeatable)
  --mail-reply REPLY        answer MAIL FROM with REPLY
  --data-reply REPLY        answer the end of the message with REPLY
  --disconnect-after CMD    drop the connection when CMD (EHLO, MAIL, RCPT, DATA) arrives,
                            without answering (DATA: after the whole message)
  --stall-after CMD         never answer CMD
  --flood-after CMD         answer CMD with a megabyte of garbage and no line end
  --no-ehlo                 refuse EHLO with 502 (HELO still works)
  --no-pipelining           do not offer PIPELINING (offered by default)

With --exit-on-eof it exits when its stdin reaches end of file: the tests hold the other end,
so a test run that dies (even by a crash, which skips its clean-up) takes its peers with it.
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", metavar="USER:PASS")
    parser.add_argument("--auth-mechanisms", default="PLAIN,LOGIN")
    parser.add_argument("--no-pipelining", action="store_true")
    parser.add_argument("--no-ehlo", action="store_true")
    parser.add_argument("--rcpt-reply", action="append", default=[])
    parser.add_argument("--mail-reply")
    parser.add_argument("--data-reply")
    parser.add_argument("--disconnect-after")
    parser.add_argument("--stall-after")
    parser.add_argument("--flood-after")
    parser.add_argument("--exit-on-eof", action="store_true")
    args = parser.parse_args()
    # aiosmtpd warns about AUTH without TLS; the plain-connection tests want exactly that.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    os.makedirs(args.out, exist_ok=True)

    transcript = logging.FileHandler(os.path.join(args.out, "transcript.log"))
    transcript.addFilter(lambda record: " >> " in record.getMessage())
    transcript.setFormatter(logging.Formatter("%(message)s"))
    mail_log = logging.getLogger("mail.log")
    mail_log.setLevel(logging.INFO)
    mail_log.addHandler(transcript)

    handler = Handler(args)
    cert_key = args.starttls or args.implicit_tls
    tls_context = None
    if cert_key:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(*cert_key)

    excluded = {"PLAIN", "LOGIN"} - set(args.auth_mechanisms.split(","))

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, _, password = args.auth.partition(":")
        ok = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(user.encode(), password.encode())
        if ok:
            session.waybill_mechanism = mechanism
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(
            handler,
            hostname="smarthost.test",
            loop=loop,
            tls_context=tls_context if args.starttls else None,
            require_starttls=bool(args.starttls),
            # Implicit TLS is invisible to aiosmtpd; the connection is encrypted all the same.
            auth_require_tls=bool(args.starttls),
            authenticator=authenticator if args.auth else None,
            auth_required=bool(args.auth),
            auth_exclude_mechanism=excluded,
        )

    server = loop.run_until_complete(
        loop.create_server(factory, "127.0.0.1", 0, ssl=tls_context if args.implicit_tls else None)
    )
    if args.exit_on_eof:
        def on_stdin():
            if not os.read(0, 4096):
                os._exit(0)

        loop.add_reader(0, on_stdin)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    loop.run_forever()


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0
        self.rcpt_replies = dict(item.split("=", 1) for item in args.rcpt_reply)

    async def fault(self, server, command):
        """Carries out --disconnect-after, --stall-after, --flood-after for `command`."""
        if self.args.disconnect_after == command:
            server.transport.abort()
            await asyncio.sleep(3600)  # cancelled by aiosmtpd when the connection goes
        if self.args.stall_after == command:
            await asyncio.sleep(3600)
        if self.args.flood_after == command:
            server.transport.write(b"x" * (1 << 20))
            await asyncio.sleep(3600)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self.fault(server, "EHLO")
        if self.args.no_ehlo:
            return ["502 5.5.2 Error: command not recognized"]
        session.host_name = hostname
        session.waybill_ehlo = hostname
        if not self.args.no_pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        session.waybill_helo = hostname
        return "250 smarthost.test"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Pipelined (RFC 2920) when the RCPTs are already here while MAIL is being answered:
        # a client that waits for each reply cannot have sent them yet.
        session.waybill_pipelined = len(server._reader._buffer) > 0
        await self.fault(server, "MAIL")
        if self.args.mail_reply:
            return self.args.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self.fault(server, "RCPT")
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        await self.fault(server, "DATA")
        if self.args.data_reply:
            return self.args.data_reply
        self.count += 1
        name = os.path.join(self.args.out, str(self.count))
        with open(name + ".eml", "wb") as message:
            message.write(envelope.original_content)
        envelope_json = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "ehlo": getattr(session, "waybill_ehlo", None),
            "helo": getattr(session, "waybill_helo", None),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth_mechanism": getattr(session, "waybill_mechanism", None),
            "auth_login": session.login_data.decode() if session.login_data else None,
            "pipelined": getattr(session, "waybill_pipelined", None),
        }
        with open(name + ".json", "w") as out:
            json.dump(envelope_json, out)
        return f"250 2.0.0 Ok: queued as Q{self.count}"


if __name__ == "__main__":
    sys.exit(main())
