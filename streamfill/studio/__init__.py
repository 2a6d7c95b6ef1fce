"""``streamfill studio``: a local web editor to open a clip, paint the object on a frame, track it, preview the
masks and run the removal (one static page of plain JavaScript and canvas, served by Starlette on uvicorn).

The web framework is imported only inside this package (install ``streamfill[studio]``). ``session`` holds the
state and jobs without any framework; ``app`` is the HTTP layer; ``server`` binds and runs it.
"""
