"""Classifying whole files, on one machine or on Spark, with the service's exact answers.

A protocol beside REST and v2: it uses core/, engines/ and infer/ (the same tokenizer, engine and
validation as /classify) and never the HTTP layer.
"""
