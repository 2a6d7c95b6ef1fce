"""streamfill: remove objects from video files, live cameras and host applications.

Importing the package changes nothing (no global flags, no logging setup); see DESIGN.md.
"""

__version__ = "0.1.0"
