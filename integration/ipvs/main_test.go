package ipvs_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// guestVipd is where TestVipdIPVSInVM puts vipd in the guest.
const guestVipd = "/bin/vipd"
