FROM x
VOLUME [false]
