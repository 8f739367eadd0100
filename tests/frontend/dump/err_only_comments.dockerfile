# a

# b
