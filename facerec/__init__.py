"""facerec: offline face recognition service (MTCNN + FaceNet + Annoy + SQLite).

The public surface reads like face_recognition's: plain functions over numpy images.
Models are never loaded at import time; see facerec.pipeline.load_pipeline.
"""

__version__ = "0.1.0"
