"""Rebuild streamfill/data/demo.mp4 from Big Buck Bunny (CC-BY 3.0, (c) 2008 Blender Foundation).

Usage: python scripts/make_demo_clip.py SOURCE.mp4 streamfill/data/demo.mp4
Scales the video to 640x360 (H.264, crf 26) and re-encodes the audio to stereo AAC 96 kb/s.
"""

import sys
from fractions import Fraction

import av


def main(src: str, dst: str) -> None:
    with av.open(src) as inp, av.open(dst, "w", options={"movflags": "+faststart"}) as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        v = out.add_stream("libx264", rate=vin.average_rate)
        v.width, v.height, v.pix_fmt = 640, 360, "yuv420p"
        v.options = {"crf": "26", "preset": "slow"}
        v.codec_context.time_base = Fraction(1, int(vin.average_rate))
        a = out.add_stream("aac", rate=48000, layout="stereo")
        a.bit_rate = 96000
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        n = 0
        for packet in inp.demux(vin, ain):
            for frame in packet.decode():
                if packet.stream is vin:
                    small = frame.reformat(width=640, height=360)
                    small.pts, small.time_base = n, v.codec_context.time_base
                    n += 1
                    out.mux(v.encode(small))
                else:
                    for rf in resampler.resample(frame):
                        out.mux(a.encode(rf))
        for rf in resampler.resample(None):
            out.mux(a.encode(rf))
        out.mux(v.encode(None))
        out.mux(a.encode(None))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
