# check=a
# check=b
FROM x
