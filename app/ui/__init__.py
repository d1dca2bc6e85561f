"""The pages a browser opens: the playground at / and Swagger UI at /docs, served offline."""
