"""A real SMTP server for the tests: accepts every message and stores it as JSON.

Usage: smtp-sink.py PORT DIRECTORY
Each message becomes DIRECTORY/<n>.json with from, to, subject and the decoded text body.
"""
import asyncio
import email
import email.policy
import json
import pathlib
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        self.count += 1
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "text": body.get_content() if body is not None else "",
        }
        temporary = self.directory / f".{self.count}.json"
        temporary.write_text(json.dumps(record))
        temporary.rename(self.directory / f"{self.count}.json")
        return "250 Message accepted"


def main():
    port, directory = int(sys.argv[1]), pathlib.Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(Store(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
