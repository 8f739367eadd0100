FROM x
ENTRYPOINT ["a", {"b": 1}]
