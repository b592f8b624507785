#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace execflow {

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};

// A minimal HTTP/1.0 client for tests against 127.0.0.1.
inline HttpReply HttpRequest(int port, const std::string& path, const std::string& method = "GET",
                             const std::string& header = "") {
  HttpReply reply;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return reply;
  }
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: localhost\r\n" +
                    (header.empty() ? "" : header + "\r\n") + "\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return reply;
  }
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) resp.append(buf, n);
  close(fd);
  auto sp = resp.find(' ');
  if (sp != std::string::npos) reply.status = std::stoi(resp.substr(sp + 1, 3));
  auto end = resp.find("\r\n\r\n");
  if (end != std::string::npos) {
    reply.headers = resp.substr(0, end);
    reply.body = resp.substr(end + 4);
  }
  return reply;
}

}  // namespace execflow
