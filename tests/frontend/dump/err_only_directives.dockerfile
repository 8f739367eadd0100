# syntax=x
# escape=`
