FROM x
CMD ["c", {"k": [1, {"z": null}], "q": "s"}]
