"""The radsynth service: a REST API and web page over the library (``radsynth serve``), a job
queue that survives restarts (SQLite), API tokens with scopes, a DICOMweb client and a gate that
keeps synthetic studies out of a real PACS.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart, dicomweb-client).
"""
