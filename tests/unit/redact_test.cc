#include "exporter/events/redact.h"

#include <gtest/gtest.h>

#include "exporter/config/config.h"

namespace execflow {
namespace {

using Args = std::vector<std::string>;

std::vector<std::string> ExecDefaults() { return EventsConfig{}.redact_flags; }

Args Redacted(Args args, bool urls = true) {
  ArgRedactor r(ExecDefaults(), urls);
  r.Redact(&args);
  return args;
}

TEST(Redact, ValuesOfSecretFlagsInEitherForm) {
  EXPECT_EQ(Redacted({"mysql", "--password=hunter2", "--user=bob"}),
            (Args{"mysql", "--password=*****", "--user=bob"}));
  EXPECT_EQ(Redacted({"vault", "login", "-token", "s.abc", "-method=x"}),
            (Args{"vault", "login", "-token", "*****", "-method=x"}));
  EXPECT_EQ(Redacted({"app", "--DB_PASSWORD=x", "--db-password", "y", "MYSQL_PWD=z", "API_KEY=k"}),
            (Args{"app", "--DB_PASSWORD=*****", "--db-password", "*****", "MYSQL_PWD=*****", "API_KEY=*****"}));
  // Names that only contain a secret word are not secrets; nor is a value that looks like one.
  EXPECT_EQ(Redacted({"app", "--passthrough=1", "--tokens", "5", "--compass=n", "password"}),
            (Args{"app", "--passthrough=1", "--tokens", "5", "--compass=n", "password"}));
  // A flag at the end has no value to hide; "---password" is not a flag.
  EXPECT_EQ(Redacted({"app", "--secret"}), (Args{"app", "--secret"}));
  EXPECT_EQ(Redacted({"app", "---secret", "x"}), (Args{"app", "---secret", "x"}));
  EXPECT_EQ(Redacted({"", "-", "--", "=", "--=x"}), (Args{"", "-", "--", "=", "--=x"}));
}

TEST(Redact, PasswordsInUrls) {
  EXPECT_EQ(Redacted({"git", "clone", "https://bob:hunter2@git.example.com/r.git"}),
            (Args{"git", "clone", "https://bob:*****@git.example.com/r.git"}));
  EXPECT_EQ(Redacted({"psql", "postgres://u:p%40ss@db:5432/x?sslmode=require", "http://host/a@b"}),
            (Args{"psql", "postgres://u:*****@db:5432/x?sslmode=require", "http://host/a@b"}));
  EXPECT_EQ(Redacted({"x", "a://u:1@h b://v:2@k"}), (Args{"x", "a://u:*****@h b://v:*****@k"}));
  EXPECT_EQ(Redacted({"curl", "https://user@host/", "://", "x://@"}), (Args{"curl", "https://user@host/", "://", "x://@"}));
  EXPECT_EQ(Redacted({"git", "clone", "https://bob:pw@h/"}, false), (Args{"git", "clone", "https://bob:pw@h/"}));
}

TEST(Redact, CountsWhatItReplacesAndCanBeTurnedOff) {
  Args a = {"x", "--token=1", "--pass", "2", "https://u:3@h"};
  EXPECT_EQ(ArgRedactor(ExecDefaults(), true).Redact(&a), 3u);
  Args b = {"x", "--token=1"};
  EXPECT_EQ(ArgRedactor({}, false).Redact(&b), 0u);
  EXPECT_EQ(b, (Args{"x", "--token=1"}));
}

// A hostile command line: one pass, whatever its bytes.
TEST(Redact, LongAndOddArgumentsAreSafe) {
  Args a = {std::string(32768, '-'), std::string(32768, '='), std::string(10000, '@') + "://" + std::string(10000, ':'),
            std::string("--pass\0word=x", 13)};
  Args b = a;
  ArgRedactor(ExecDefaults(), true).Redact(&b);
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(b[1], a[1]);
}

}  // namespace
}  // namespace execflow
