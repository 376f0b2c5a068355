"""A printer's RTSPS camera (port 322), served over real TLS on 127.0.0.1.

Enough RTSP (RFC 2326) for FFmpeg and PyAV over TCP interleaved transport:
OPTIONS, DESCRIBE (SDP with one H.264 video track), SETUP (only
``RTP/AVP/TCP;interleaved``), PLAY, GET_PARAMETER and TEARDOWN. Every request
but OPTIONS needs an ``Authorization`` header for user ``bblp`` and the access
code, Basic or Digest (RFC 2617, checked here by hand, not with code under
test); anything else gets 401 with a challenge. After PLAY the server sends
the prepared RTP packets as interleaved frames on channel 0, over and over,
until the client leaves.

``received`` counts every application byte a client sent: a test proves with
it that an unverified connection carries nothing. ``sni_seen`` records the SNI
of every ClientHello, including handshakes that fail.

``h264_track`` makes the payload: a few tiny frames encoded by the
``ffmpeg`` binary and packetized per RFC 6184 (single NAL units, FU-A above
the MTU); ``opaque_track`` makes packets for clients that only count them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import re
import secrets
import ssl
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from tools.client_server import ClientServer

USER = "bblp"
REALM = "Bambu test camera"
PATH = "/streaming/live/1"
RTP_MTU = 1400
RTP_CLOCK = 90_000
PAYLOAD_TYPE = 96
FPS = 25
SSRC = 0x0BB1CA3E
CLIENT_TIMEOUT = 10.0
MAX_CLIENTS = 64

type AuthScheme = Literal["basic", "digest"]


@dataclass(frozen=True)
class H264Track:
    """An H.264 stream as RTP packets plus the SDP that describes it."""

    sdp_media: str
    packets: list[bytes]
    frames: int


@dataclass
class RtspRequest:
    """One request as the server parsed it."""

    method: str
    uri: str
    headers: dict[str, str]
    authorized: bool = False


def _split_annexb(data: bytes) -> Iterator[bytes]:
    """NAL units of an Annex B byte stream (start codes removed)."""
    for chunk in re.split(b"\x00\x00\x01", data):
        nal = chunk.rstrip(b"\x00")
        if nal:
            yield nal


def _rtp(sequence: int, timestamp: int, marker: bool, payload: bytes) -> bytes:
    return (
        struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | PAYLOAD_TYPE,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            SSRC,
        )
        + payload
    )


def _packetize(nal: bytes) -> list[bytes]:
    """RFC 6184: the NAL as it is, or FU-A fragments when above the MTU."""
    if len(nal) <= RTP_MTU:
        return [nal]
    indicator = (nal[0] & 0xE0) | 28
    kind = nal[0] & 0x1F
    body = nal[1:]
    pieces = [body[i : i + RTP_MTU - 2] for i in range(0, len(body), RTP_MTU - 2)]
    out = []
    for index, piece in enumerate(pieces):
        header = kind
        if index == 0:
            header |= 0x80
        if index == len(pieces) - 1:
            header |= 0x40
        out.append(bytes([indicator, header]) + piece)
    return out


def h264_track(ffmpeg: str, frames: int = 10) -> H264Track:
    """Encode ``frames`` tiny test frames with FFmpeg; packetize them for RTP.

    Blocking (runs the ``ffmpeg`` binary): call it outside the event loop.
    """
    encoded = subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [
            ffmpeg,
            *("-hide_banner", "-loglevel", "error", "-f", "lavfi"),
            *("-i", "testsrc=size=64x48:rate=25", "-frames:v", str(frames)),
            *("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"),
            *("-bf", "0", "-pix_fmt", "yuv420p", "-f", "h264", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    units: list[list[bytes]] = []
    for nal in _split_annexb(encoded):
        # A new access unit starts at a parameter set, SEI or first slice.
        kind = nal[0] & 0x1F
        if not units or kind in (6, 7, 8) or (kind in (1, 5) and _slices(units[-1])):
            units.append([])
        units[-1].append(nal)
    sps = next(nal for unit in units for nal in unit if nal[0] & 0x1F == 7)
    pps = next(nal for unit in units for nal in unit if nal[0] & 0x1F == 8)
    fmtp = (
        f"packetization-mode=1;profile-level-id={sps[1:4].hex()};"
        "sprop-parameter-sets="
        + ",".join(base64.b64encode(nal).decode() for nal in (sps, pps))
    )
    return _track(units, f"H264/{RTP_CLOCK}", fmtp)


def _slices(unit: list[bytes]) -> bool:
    return any(nal[0] & 0x1F in (1, 5) for nal in unit)


def opaque_track(frames: int = 5) -> H264Track:
    """Made-up NAL units: enough for a client that only counts RTP packets."""
    units = [[bytes([0x65]) + bytes([index]) * 3000] for index in range(frames)]
    return _track(units, f"H264/{RTP_CLOCK}", "packetization-mode=1")


def _track(units: list[list[bytes]], rtpmap: str, fmtp: str) -> H264Track:
    packets: list[bytes] = []
    sequence = 0
    for index, unit in enumerate(units):
        timestamp = index * RTP_CLOCK // FPS
        payloads = [piece for nal in unit for piece in _packetize(nal)]
        for number, payload in enumerate(payloads):
            packets.append(
                _rtp(sequence, timestamp, number == len(payloads) - 1, payload)
            )
            sequence += 1
    sdp_media = (
        f"m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
        f"a=rtpmap:{PAYLOAD_TYPE} {rtpmap}\r\n"
        f"a=fmtp:{PAYLOAD_TYPE} {fmtp}\r\n"
        "a=control:track1\r\n"
    )
    return H264Track(sdp_media, packets, len(units))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 2617 digest


def _digest_params(value: str) -> dict[str, str]:
    return {
        key.lower(): quoted if quoted else bare
        for key, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', value)
    }


@dataclass
class RtspServer(ClientServer):
    """TLS RTSP camera on 127.0.0.1 with a random port."""

    context: ssl.SSLContext
    access_code: str
    track: H264Track | None = None
    auth: AuthScheme = "digest"
    interval: float = 0.02
    received: int = 0
    connections: int = 0
    active: int = 0
    rtp_sent: int = 0
    unauthorized: int = 0
    sni_seen: list[str | None] = field(default_factory=list)
    requests: list[RtspRequest] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))

    def __post_init__(self) -> None:
        ClientServer.__init__(self, host="127.0.0.1", port=0, max_clients=MAX_CLIENTS)
        self.context.sni_callback = self._sni

    def _sni(
        self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        self.sni_seen.append(name)

    async def start(self) -> None:
        await self._listen(ssl=self.context)

    # ------------------------------------------------------------ session

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        self.active += 1
        sender: asyncio.Task[None] | None = None
        try:
            while (request := await self._read_request(reader)) is not None:
                if request.method == "PLAY" and request.authorized and sender is None:
                    await self._respond(
                        writer, request, 200, "OK", self._play_headers()
                    )
                    sender = asyncio.create_task(self._send_rtp(writer))
                    continue
                await self._answer(writer, request)
                if request.method == "TEARDOWN":
                    break
        except ValueError:
            pass  # a malformed request ends the session
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await sender
            self.active -= 1

    async def _read_request(self, reader: asyncio.StreamReader) -> RtspRequest | None:
        """The next request; interleaved frames from the client are skipped."""
        while True:
            first = await reader.read(1)
            if not first:
                return None
            self.received += 1
            if first == b"$":
                header = await reader.readexactly(3)
                (length,) = struct.unpack("!H", header[1:])
                await reader.readexactly(length)
                self.received += 3 + length
                continue
            head = first + await reader.readuntil(b"\r\n\r\n")
            self.received += len(head) - 1
            lines = head.decode("utf-8", "replace").split("\r\n")
            method, uri, _version = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if length := int(headers.get("content-length", "0")):
                await reader.readexactly(length)
                self.received += length
            request = RtspRequest(method, uri, headers)
            request.authorized = self._authorized(request)
            self.requests.append(request)
            return request

    def _authorized(self, request: RtspRequest) -> bool:
        value = request.headers.get("authorization", "")
        scheme, _, credentials = value.partition(" ")
        if self.auth == "basic" and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            return decoded == f"{USER}:{self.access_code}"
        if self.auth == "digest" and scheme.lower() == "digest":
            params = _digest_params(credentials)
            if (
                params.get("username") != USER
                or params.get("realm") != REALM
                or params.get("nonce") != self.nonce
            ):
                return False
            ha1 = _md5(f"{USER}:{REALM}:{self.access_code}")
            ha2 = _md5(f"{request.method}:{params.get('uri', '')}")
            if "qop" in params:
                expected = _md5(
                    f"{ha1}:{self.nonce}:{params.get('nc', '')}:"
                    f"{params.get('cnonce', '')}:{params['qop']}:{ha2}"
                )
            else:
                expected = _md5(f"{ha1}:{self.nonce}:{ha2}")
            return params.get("response") == expected
        return False

    def _challenge(self) -> str:
        if self.auth == "basic":
            return f'Basic realm="{REALM}"'
        return f'Digest realm="{REALM}", nonce="{self.nonce}"'

    async def _answer(self, writer: asyncio.StreamWriter, request: RtspRequest) -> None:
        if request.method == "OPTIONS":
            await self._respond(
                writer,
                request,
                200,
                "OK",
                {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"},
            )
            return
        if not request.authorized:
            self.unauthorized += 1
            await self._respond(
                writer,
                request,
                401,
                "Unauthorized",
                {"WWW-Authenticate": self._challenge()},
            )
            return
        if request.method == "DESCRIBE":
            await self._describe(writer, request)
        elif request.method == "SETUP":
            transport = request.headers.get("transport", "")
            if "RTP/AVP/TCP" not in transport or "interleaved" not in transport:
                await self._respond(writer, request, 461, "Unsupported Transport")
                return
            await self._respond(
                writer,
                request,
                200,
                "OK",
                {
                    "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                    "Session": "0BB1CA3E;timeout=60",
                },
            )
        elif request.method in ("PLAY", "GET_PARAMETER", "TEARDOWN"):
            await self._respond(writer, request, 200, "OK", {"Session": "0BB1CA3E"})
        else:
            await self._respond(writer, request, 405, "Method Not Allowed")

    async def _describe(
        self, writer: asyncio.StreamWriter, request: RtspRequest
    ) -> None:
        assert self.track is not None, "give the server a track to describe"
        sdp = (
            "v=0\r\n"
            "o=- 0 0 IN IP4 127.0.0.1\r\n"
            "s=Bambu test camera\r\n"
            "c=IN IP4 0.0.0.0\r\n"
            "t=0 0\r\n"
            "a=control:*\r\n"
            f"{self.track.sdp_media}"
        ).encode()
        base = request.uri.rstrip("/") + "/"
        await self._respond(
            writer,
            request,
            200,
            "OK",
            {"Content-Base": base, "Content-Type": "application/sdp"},
            sdp,
        )

    @staticmethod
    def _play_headers() -> dict[str, str]:
        return {"Session": "0BB1CA3E", "Range": "npt=0.000-"}

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter,
        request: RtspRequest,
        status: int,
        reason: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        lines = [
            f"RTSP/1.0 {status} {reason}",
            f"CSeq: {request.headers.get('cseq', '0')}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()

    async def _send_rtp(self, writer: asyncio.StreamWriter) -> None:
        """The track's packets as interleaved channel-0 frames, looped."""
        assert self.track is not None
        rounds = 0
        while True:
            offset = rounds * self.track.frames * RTP_CLOCK // FPS
            for packet in self.track.packets:
                sequence, timestamp = struct.unpack("!HI", packet[2:8])
                moved = (
                    packet[:2]
                    + struct.pack(
                        "!HI",
                        (sequence + rounds * len(self.track.packets)) & 0xFFFF,
                        (timestamp + offset) & 0xFFFFFFFF,
                    )
                    + packet[8:]
                )
                writer.write(b"$\x00" + struct.pack("!H", len(moved)) + moved)
                await writer.drain()
                self.rtp_sent += 1
                if packet[1] & 0x80:
                    await asyncio.sleep(self.interval)
            rounds += 1


class RtspClient:
    """Just enough RTSP over TCP interleaved to play one track (for tests)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.cseq = 0

    @classmethod
    async def connect(cls, port: int) -> RtspClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, uri: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        async with asyncio.timeout(CLIENT_TIMEOUT):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode().strip().split("\r\n")
            answer = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines)
            }
            assert answer["cseq"] == str(self.cseq)
            body = await self.reader.readexactly(int(answer.get("content-length", 0)))
        return int(status_line.split()[1]), answer, body

    async def interleaved(self) -> tuple[int, bytes]:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            header = await self.reader.readexactly(4)
            assert header[:1] == b"$"
            (length,) = struct.unpack("!H", header[2:])
            return header[1], await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def digest(method: str, uri: str, challenge: str, code: str) -> str:
    """The Digest ``Authorization`` value (RFC 2617, no qop) for a request."""
    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert nonce is not None
    ha1 = hashlib.md5(f"bblp:{REALM}:{code}".encode()).hexdigest()  # noqa: S324
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()  # noqa: S324
    response = hashlib.md5(  # noqa: S324
        f"{ha1}:{nonce[1]}:{ha2}".encode()
    ).hexdigest()
    return (
        f'Digest username="bblp", realm="{REALM}", nonce="{nonce[1]}", '
        f'uri="{uri}", response="{response}"'
    )
