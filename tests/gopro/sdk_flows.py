"""GoPro's own client code, unmodified, against `livestreamd fake-gopro`.

Run by tests/gopro_sdk.rs inside a network namespace where the emulated camera sits at its real
address (172.2X.1YZ.51:8080 on "USB", 10.5.5.9:80 on Wi-Fi), with the venv of
tests/gopro/requirements.txt (scripts/install-deps.sh makes it):

  sdk_flows.py wired SERIAL --codec h264|hevc [--webcam] [--preview-port N]
      open-gopro 0.22.0: WiredGoPro(serial).open() (wired USB control, third-party client info,
      API version, state polling until neither busy nor encoding); with --webcam its own webcam
      flow (gopro.streaming.start_stream(StreamType.WEBCAM, ...) and stop_active_stream()); then
      the preview stream's HTTP sequence in the order of the SDK's PreviewStreamController.start
      (stop, shutter off, start, with --preview-port where the model takes one), keep-alives,
      stop. The controller itself cannot be
      run on a WiredGoPro: it sends the shutter command over BLE (ble_command.set_shutter), which
      WiredGoPro refuses (NotImplementedError); its HTTP command for the same thing is sent
      instead, in the same place.
  sdk_flows.py legacy IP --model NAME
      goprocam 4.2.0: GoPro(ip_address=IP) detects the camera through /gp/gpControl, then
      livestream("start"), its KeepAlive() loop, livestream("stop").

Each flow receives the video the camera sends to this host's UDP 8554 (or the port it asked for)
and checks that it is MPEG-TS whose programme map names the expected codec. Exit status 0 only if
everything succeeded; each step is printed.
"""

import argparse
import asyncio
import socket
import sys
import threading
import time

STREAM_TYPES = {0x1B: "h264", 0x24: "hevc"}


def step(text):
    print(f"sdk_flows: {text}", flush=True)


def fail(text):
    print(f"sdk_flows: FAILED: {text}", flush=True)
    sys.exit(1)


def listen(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.5)
    return sock


def video_codec(sock, within=10.0, datagrams=50):
    """Reads MPEG-TS datagrams; the codec the PMT names once `datagrams` whole ones came."""
    end = time.monotonic() + within
    got, pmt_pid, codec = 0, None, None
    while time.monotonic() < end and (got < datagrams or codec is None):
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            continue
        if len(data) % 188 or any(data[i] != 0x47 for i in range(0, len(data), 188)):
            fail(f"a datagram of {len(data)} bytes that is not whole TS packets")
        got += 1
        for i in range(0, len(data), 188):
            p = data[i : i + 188]
            pid = ((p[1] & 0x1F) << 8) | p[2]
            if not p[1] & 0x40 or not p[3] & 0x10:
                continue
            start = 4 + (1 + p[4] if p[3] & 0x20 else 0)
            start += 1 + p[start]  # pointer field
            if pid == 0 and pmt_pid is None:
                pmt_pid = ((p[start + 10] & 0x1F) << 8) | p[start + 11]
            elif pid == pmt_pid and codec is None:
                info_len = ((p[start + 10] & 0x0F) << 8) | p[start + 11]
                j = start + 12 + info_len
                codec = STREAM_TYPES.get(p[j], f"stream type {p[j]:#x}")
    if got < datagrams:
        fail(f"only {got} video datagrams in {within} s")
    return codec


def expect_video(sock, codec):
    got = video_codec(sock)
    if got != codec:
        fail(f"the stream is {got}, not {codec}")
    step(f"video: MPEG-TS, {got}")


async def wired(serial, codec, webcam, port):
    from returns.result import Success

    from open_gopro import WiredGoPro
    from open_gopro.models.constants import Toggle
    from open_gopro.models.streaming import StreamType, WebcamStreamOptions

    gopro = WiredGoPro(serial)
    step(f"WiredGoPro({serial!r}).open() at {gopro.ip_address}")
    await gopro.open(timeout=10, retries=1)
    step(f"open: API version {gopro.version}")
    state = (await gopro.http_command.get_camera_state()).data
    step(f"state: {len(state)} statuses and settings")
    try:
        info = await gopro.http_command.get_camera_info()
        step(f"camera info: {info.data}")
    except Exception as e:  # HERO9 to HERO11 have no /gopro/camera/info
        step(f"camera info: none ({type(e).__name__})")

    if webcam:
        sock = listen(8554)
        step("streaming.start_stream(StreamType.WEBCAM)")
        result = await gopro.streaming.start_stream(StreamType.WEBCAM, WebcamStreamOptions())
        if not isinstance(result, Success):
            fail(f"webcam start: {result}")
        expect_video(sock, "h264")  # spec: the webcam stream is AVC/h264 on every model
        step("streaming.stop_active_stream()")
        await gopro.streaming.stop_active_stream()
        sock.close()

    sock = listen(port or 8554)
    step("preview: the PreviewStreamController's HTTP sequence")
    await gopro.http_command.set_preview_stream(mode=Toggle.DISABLE)
    await gopro.http_command.set_shutter(shutter=Toggle.DISABLE)  # the SDK sends this over BLE
    r = await gopro.http_command.set_preview_stream(mode=Toggle.ENABLE, port=port)
    if not r.ok:
        fail(f"preview start: {r}")
    for _ in range(2):
        k = await gopro.http_command.set_keep_alive()
        if not k.ok:
            fail(f"keep-alive: {k}")
    expect_video(sock, codec)
    r = await gopro.http_command.set_preview_stream(mode=Toggle.DISABLE)
    if not r.ok:
        fail(f"preview stop: {r}")
    await gopro.close()
    step("wired flows passed")


def legacy(ip, model):
    from goprocam import GoProCamera, constants

    sock = listen(8554)
    step(f"goprocam GoPro(ip_address={ip!r})")
    cam = GoProCamera.GoPro(ip_address=ip)
    if cam.whichCam() != constants.Camera.Interface.GPControl:
        fail(f"goprocam took it for {cam.whichCam()!r}")
    name = cam.infoCamera("model_name")
    if name != model:
        fail(f"model {name!r}, not {model!r}")
    step(f"infoCamera: {name}, firmware {cam.infoCamera('firmware_version')}")
    started = cam.livestream("start")
    if started in ("", None):
        fail("livestream('start') got no answer")
    threading.Thread(target=cam.KeepAlive, daemon=True).start()
    expect_video(sock, "h264")
    cam.livestream("stop")
    step("goprocam flow passed")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="flow", required=True)
    w = sub.add_parser("wired")
    w.add_argument("serial")
    w.add_argument("--codec", default="h264")
    w.add_argument("--webcam", action="store_true")
    w.add_argument("--preview-port", type=int, default=None)
    lg = sub.add_parser("legacy")
    lg.add_argument("ip")
    lg.add_argument("--model", required=True)
    a = ap.parse_args()
    if a.flow == "wired":
        asyncio.run(wired(a.serial, a.codec, a.webcam, a.preview_port))
    else:
        legacy(a.ip, a.model)


if __name__ == "__main__":
    main()
