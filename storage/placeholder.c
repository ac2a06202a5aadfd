/* storage placeholder */ typedef int st_placeholder;
