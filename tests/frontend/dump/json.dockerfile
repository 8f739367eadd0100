CMD ['a']
CMD ["a"] x
CMD ["a",]
CMD ["a"
CMD ["a\u0041\n\t\"\\\/", "\ud83d\ude00", "\ud800x", "\udc00", "\ud800\u0041"]
RUN [ "a" , "b" ]	
RUN ["a"]
RUN ["a"]
RUN ["raw	tab"]
RUN ["Ã©", "ÿ"]
COPY ["a", "b"]
COPY [ broken
RUN [1
RUN ["a"]]
CMD  [ ]
RUN ["a", 01]
RUN ["a" "b"]
RUN ["\x"]
RUN [
ENTRYPOINT [ "a",
	"b" ]
VOLUME [ "/a",
