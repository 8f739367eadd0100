# escape=  
FROM y
