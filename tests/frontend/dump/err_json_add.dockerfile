FROM x
ADD [1, "b"]
