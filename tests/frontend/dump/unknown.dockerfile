FooBar a b c
FOO --x y
BAR
RÜN x
İX a
AB� c
