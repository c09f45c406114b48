// The reference Argon2 implementation, from Debian's libargon2-dev.
#include <argon2.h>
