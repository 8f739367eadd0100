FROM x
CMD [ "echo", [ "nested json" ] ]
