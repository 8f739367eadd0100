FROM x
# escape=x
# escape=y
