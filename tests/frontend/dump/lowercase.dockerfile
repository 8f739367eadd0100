fRoM a
Run  echo   hi
wOrKdIr /X
