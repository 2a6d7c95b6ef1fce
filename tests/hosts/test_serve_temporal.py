"""`streamfill serve --temporal`: per-stream look-back temporal completion (build.make_temporal_fill), the
serve side of the host integrations' temporal mode. No host application needed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import square_over_background

from streamfill import build, protocol
from streamfill.config import Config, merge

H, W, N = 48, 72, 8


def _clip():
    return square_over_background(N, H, W)


@pytest.fixture
def make_fill():
    """``build.make_temporal_fill``, each fill closed after the test: an open stream keeps its thread, and
    threads left running in the test process are copied half-way into any process forked later."""
    fills = []

    def make(config):
        fills.append(build.make_temporal_fill(config))
        return fills[-1]

    yield make
    for fill in fills:
        fill.close()


def _message(image, mask, index, stream):
    return protocol.decode(protocol.encode_frame(image, mask=mask, index=index, pts=index * 40, time_base=(1, 1000),
                                                 stream=stream))


def test_streams_are_independent_and_restart_on_a_jump(make_fill):
    config = merge(Config(), {"temporal": {"mode": "fast"}})
    clip = list(_clip())
    alone = make_fill(config)
    reference = [alone(img, m, _message(img, m, i, "a")) for i, (img, m) in enumerate(clip)]
    # look-back: later frames get the background that earlier frames showed, so they differ from frame-alone fills
    per_frame = build.make_fill(config)
    assert not np.array_equal(reference[-1], per_frame(*clip[-1]))

    fill = make_fill(config)
    for i, (img, m) in enumerate(clip):  # two streams interleaved on one server: each as if alone
        assert np.array_equal(fill(img, m, _message(img, m, i, "a")), reference[i])
        assert np.array_equal(fill(img, m, _message(img, m, i, "b")), reference[i])
    # a jump back (a seek) starts the stream again: frame 6 after frame 7 is filled as a first frame
    img, m = clip[6]
    restarted = fill(img, m, _message(img, m, 6, "a"))
    fresh = make_fill(config)
    assert np.array_equal(restarted, fresh(img, m, _message(img, m, 6, "x")))
    assert not np.array_equal(restarted, reference[6])


def test_a_failed_frame_does_not_break_the_stream(make_fill):
    config = merge(Config(), {"temporal": {"mode": "fast"}})
    clip = list(_clip())
    fill = make_fill(config)
    img, m = clip[0]
    with pytest.raises(Exception):  # noqa: B017 - a wrong-size mask fails this frame (serve: fill_failed)
        fill(img, m[:10], _message(img, m, 0, "a"))
    out = fill(img, m, _message(img, m, 1, "a"))  # the next frame is filled (the stream started again)
    assert out.shape == img.shape and not np.array_equal(out, img)


def test_two_clients_with_the_same_stream_id_never_share_pictures(make_fill):
    """A stream id names a stream within one connection: two clients that both leave it unset ("") were one
    stream, so each frame restarted the other's completion, and a look-back fill could paint one client's pictures
    into the other's hole."""
    from streamfill.transport.serve import ServeService

    config = merge(Config(), {"temporal": {"mode": "fast"}})
    clip = list(_clip())
    alone = make_fill(config)
    reference = [alone(img, m, _message(img, m, i, "")) for i, (img, m) in enumerate(clip)]
    svc = ServeService("tcp://127.0.0.1:0", make_fill(config))
    for i, (img, m) in enumerate(clip):
        for client in (b"A", b"B"):
            body = protocol.encode_frame(img, mask=m, index=i, pts=i * 40, time_base=(1, 1000))
            (reply,) = svc.replies(body, client)
            got = protocol.decode(reply)
            assert got.type == "result" and np.array_equal(got.image, reference[i]), (client, i)
