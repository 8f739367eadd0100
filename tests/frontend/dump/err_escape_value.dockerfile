# escape=x
FROM y
