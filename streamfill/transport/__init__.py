"""ZeroMQ transport: plugin mask sources, output sinks and the ``serve`` service (all zmq code is here).

The wire format lives in ``streamfill.protocol`` (spec: plugins/PROTOCOL.md). Endpoint specs on the
command line look like ``zmq:[MODE:]ENDPOINT``: mask sources ``req`` (default) or ``sub``, sinks ``push``
(default) or ``pub``. Streamfill connects to plugins; the publish sink and ``serve`` bind.
"""

from streamfill.transport._zmq import SINK_MODES, SOURCE_MODES, Spec, is_loopback, parse_spec
from streamfill.transport.keys import CurveKeys, generate_keys, load_client_keys, load_server_keys
from streamfill.transport.masks import ReqMaskSource, SubMaskSource
from streamfill.transport.serve import ServeService
from streamfill.transport.sinks import PubSink, PushSink

__all__ = [
    "SINK_MODES", "SOURCE_MODES", "CurveKeys", "PubSink", "PushSink", "ReqMaskSource", "ServeService", "Spec",
    "SubMaskSource", "generate_keys", "is_loopback", "load_client_keys", "load_server_keys", "mask_source",
    "sink", "parse_spec",
]


def mask_source(spec: str, config=None, *, live: bool = False, stream: str = ""):
    """A mask source from ``zmq:[req|sub:]ENDPOINT``."""
    parsed = parse_spec(spec, SOURCE_MODES)
    cls = ReqMaskSource if parsed.mode == "req" else SubMaskSource
    return cls(parsed.endpoint, config, live=live, stream=stream)


def sink(spec: str, config=None, *, stream: str = ""):
    """A frame sink from ``zmq:[push|pub:]ENDPOINT`` (push connects, pub binds)."""
    parsed = parse_spec(spec, SINK_MODES)
    cls = PushSink if parsed.mode == "push" else PubSink
    return cls(parsed.endpoint, config, stream=stream)
