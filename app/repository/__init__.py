"""The model repository on disk: DIR/<name>/<version>/, each version folder what training writes,
and the per-model version policy. Files only: what is served is the request path's business."""
