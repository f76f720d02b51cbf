"""Accuracy evaluation of the service's pipeline (and optionally face_recognition) on the
user's own labelled photos: `python -m facerec.evaluate PHOTO_DIR`."""
