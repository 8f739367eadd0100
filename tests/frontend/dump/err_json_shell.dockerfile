FROM x
SHELL ["a", -1.5e3]
