/* server/placeholder */ typedef int srv_placeholder;
