"""The request path, free of any protocol: readiness, classify and explain flows, the queue and the
batch runner. It raises the plain errors of `app.infer.errors`; each protocol maps them."""
