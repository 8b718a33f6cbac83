// Package cloudsim is test infrastructure: simulated cloud endpoints that
// speak the real wire protocols of cloud APIs, so that msm's providers can
// be tested with the vendors' own SDK clients pointed at a local server
// instead of a real account.
//
// EC2 simulates the Amazon EC2 Query API (the "ec2query" protocol of
// github.com/aws/aws-sdk-go-v2/service/ec2): form-encoded POST requests
// carrying Action=…&Version=2016-11-15, answered with XML documents in the
// http://ec2.amazonaws.com/doc/2016-11-15/ namespace, and failures with EC2's
// error document
//
//	<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors><RequestID>…</RequestID></Response>
//
// and the HTTP status EC2 uses for that code. A client uses it by setting
// the SDK's BaseEndpoint to the simulator's URL:
//
//	sim := cloudsim.NewEC2(launcher, cloudsim.EC2Options{})
//	defer sim.Close()
//	client := ec2.NewFromConfig(aws.Config{
//		Region:      "us-east-1",
//		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
//	}, func(o *ec2.Options) {
//		o.BaseEndpoint = aws.String(sim.URL())
//		o.HTTPClient = sim.HTTPClient() // optional: see EC2.HTTPClient
//	})
//
// Only the actions msm's ec2 provider needs are implemented (RunInstances,
// DescribeInstances, TerminateInstances); every other action fails with
// InvalidAction, as an action unknown to EC2 does. Faults are injected with
// NoCapacity, Throttle and FailNext.
//
// The simulator does not run machines itself: a Launcher does, so a test
// decides what "an instance" is (a process, a container, or just a record).
package cloudsim

// Launcher boots and stops the instances of a simulated cloud: the
// simulator calls Boot when an instance is created and Stop when it is
// terminated.
//
// A simulator calls Boot at most once per instance, while it answers the
// request that creates it (so a slow Boot is a slow request), and Stop at
// most once per instance whose Boot succeeded, never before Boot has
// returned. Calls for different instances may be concurrent.
type Launcher interface {
	// Boot starts instance id from its user data (already base64-decoded;
	// nil if none) and returns the instance's private IPv4 address.
	Boot(id string, userData []byte) (privateIP string, err error)
	// Stop stops the instance; one already stopped is no error.
	Stop(id string) error
}
