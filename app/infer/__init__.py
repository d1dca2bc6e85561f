"""The request path, free of any protocol: the classify and explain flows, on the version a request
is routed to. It raises the plain errors of `app.errors`; each protocol maps them."""
