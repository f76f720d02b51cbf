"""Serve the face-recognition API (development server).

    python app.py [--host 127.0.0.1] [--port 5000]

Production: gunicorn -w 2 -b 127.0.0.1:5000 'facerec.api:create_app()'  (no --preload:
each worker loads the models after the fork). Settings: FACEREC_* variables (README).
"""

from facerec.api.serve import main

if __name__ == "__main__":
    main()
