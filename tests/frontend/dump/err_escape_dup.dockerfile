# escape=`
# ESCAPE=\
FROM x
