// Package ec2 is the provider of the ec2 kind: each server is an EC2
// instance launched from the catalog's AMI or launch template, whose user
// data starts `msm node` with the server's name; deleting a server
// terminates its instance. It uses the AWS SDK for Go v2 and the default
// credential chain (environment, shared profile, instance role).
package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/cloudinit"
)

// Tags msm puts on every instance it launches.
const (
	TagOwner  = "msm:owner"  // the Manager's name
	TagServer = "msm:server" // the server's name (the node's --server)
	TagKey    = "msm:key"    // the idempotency key of the launch
)

// API is the part of the EC2 client the provider calls (*ec2.Client is
// one). DescribeInstances must see an instance as soon as RunInstances
// returned it, with its tags.
type API interface {
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
}

// Provider launches and terminates the instances of one Manager.
type Provider struct {
	api     API
	cfg     catalog.EC2
	boot    catalog.NodeBoot
	manager string
	// RunningWait bounds the wait for a new instance to run.
	RunningWait time.Duration
	// Poll is the first interval of that wait.
	Poll time.Duration
}

// capacityCodes are the errors that say "not this type / subnet now": the
// next one configured is tried.
var capacityCodes = []string{"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported",
	"InsufficientFreeAddressesInSubnet", "InsufficientHostCapacity"}

// New returns the provider of manager with the catalog's ec2 settings,
// with an SDK client from the default credential chain.
func New(ctx context.Context, m catalog.Manager, manager string) (*Provider, error) {
	if m.EC2.Region == "" {
		return nil, errors.New("manager.ec2.region is not set; set the AWS region to launch in, e.g. eu-west-1")
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(m.EC2.Region), config.WithRetryer(Retryer))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration, %w", err)
	}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if m.EC2.Endpoint != "" {
			o.BaseEndpoint = aws.String(m.EC2.Endpoint)
		}
	})
	return NewWithAPI(client, m, manager), nil
}

// Retryer is the SDK retryer the provider's client uses: throttling and
// transient errors are retried with backoff (up to 8 attempts); a capacity
// error is not, since the next instance type or subnet is tried instead.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 8
		o.MaxBackoff = 10 * time.Second
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if slices.Contains(capacityCodes, code(err)) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, o.Retryables...)
	})
}

// NewWithAPI returns the provider over api.
func NewWithAPI(api API, m catalog.Manager, manager string) *Provider {
	return &Provider{api: api, cfg: m.EC2, boot: m.Node, manager: manager, RunningWait: 5 * time.Minute, Poll: 500 * time.Millisecond}
}

// Check verifies at start what would otherwise fail the first launch: the
// credentials and the endpoint answer, the AMI exists, and the instance
// types are the region's.
func (p *Provider) Check(ctx context.Context) error {
	if _, err := p.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []types.Filter{{Name: aws.String("tag:" + TagOwner), Values: []string{p.manager}}}}); err != nil {
		return fmt.Errorf("calling EC2 in %s (are AWS credentials set: AWS_ACCESS_KEY_ID, AWS_PROFILE or an instance role?), %w", p.cfg.Region, err)
	}
	if p.cfg.AMI != "" {
		out, err := p.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{p.cfg.AMI}})
		if err != nil || len(out.Images) == 0 {
			return fmt.Errorf("manager.ec2.ami: %s is not an image this account can launch in %s; check the ID and region, %v", p.cfg.AMI, p.cfg.Region, err)
		}
	}
	if len(p.cfg.InstanceTypes) > 0 {
		var its []types.InstanceType
		for _, t := range p.cfg.InstanceTypes {
			its = append(its, types.InstanceType(t))
		}
		if _, err := p.api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: its}); err != nil {
			return fmt.Errorf("manager.ec2.instance_types: %v are not all instance types of %s; check their names, %w", p.cfg.InstanceTypes, p.cfg.Region, err)
		}
	}
	if _, err := UserData(p.boot, "check", p.manager, cloudinit.Secrets{}); err != nil {
		return err
	}
	return nil
}

// Create launches the server spec.Name, or returns the instance already
// launched for key: an instance tagged with the key is looked for first,
// and each attempt's client token derives from the key, so a launch retried
// after a crash makes no second instance. Instance types, then subnets, are
// tried in order while they have no capacity.
func (p *Provider) Create(ctx context.Context, key string, spec providers.Spec) (providers.Server, error) {
	if found, err := p.find(ctx, []types.Filter{tagFilter(TagKey, key), live}); err != nil {
		return providers.Server{}, err
	} else if len(found) > 0 {
		return p.running(ctx, spec, *found[0].InstanceId)
	}
	userData, err := UserData(p.boot, spec.Name, spec.Owner, cloudinit.Secrets{JoinToken: spec.JoinToken, CodecKeys: spec.CodecKeys})
	if err != nil {
		return providers.Server{}, err
	}
	typesToTry := p.cfg.InstanceTypes
	if len(typesToTry) == 0 {
		typesToTry = []string{""} // the launch template's
	}
	subnets := p.cfg.Subnets
	if len(subnets) == 0 {
		subnets = []string{""} // the default VPC's
	}
	var full []string
	for _, it := range typesToTry {
		for _, subnet := range subnets {
			in := p.runInput(key, spec, it, subnet, userData)
			out, err := p.api.RunInstances(ctx, in)
			if err != nil {
				if slices.Contains(capacityCodes, code(err)) {
					full = append(full, fmt.Sprintf("%s in %s: %s", or(it, "the template's type"), or(subnet, "the default subnet"), code(err)))
					continue
				}
				return providers.Server{}, classify("launching an instance", err)
			}
			if len(out.Instances) == 0 {
				return providers.Server{}, errors.New("RunInstances returned no instance")
			}
			return p.running(ctx, spec, *out.Instances[0].InstanceId)
		}
	}
	return providers.Server{}, fmt.Errorf("%w: no configured instance type and subnet has room (%s); add instance types or subnets under manager.ec2",
		providers.ErrNoCapacity, strings.Join(full, "; "))
}

func (p *Provider) runInput(key string, spec providers.Spec, instanceType, subnet, userData string) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: clientToken(key, instanceType, subnet),
		UserData:    aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String("Name"), Value: aws.String(spec.Name)},
			{Key: aws.String(TagOwner), Value: aws.String(spec.Owner)},
			{Key: aws.String(TagServer), Value: aws.String(spec.Name)},
			{Key: aws.String(TagKey), Value: aws.String(key)},
		}}},
		SecurityGroupIds: p.cfg.SecurityGroups,
		// IMDSv2 only, one hop: the instance metadata (its role's
		// credentials, its user data) answers a session token, which a
		// container behind a NAT hop cannot get.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:              types.HttpTokensStateRequired,
			HttpPutResponseHopLimit: aws.Int32(1),
			HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
		},
	}
	if p.cfg.AMI != "" {
		in.ImageId = aws.String(p.cfg.AMI)
	}
	if t := p.cfg.LaunchTemplate; t != "" {
		in.LaunchTemplate = &types.LaunchTemplateSpecification{Version: aws.String("$Default")}
		if strings.HasPrefix(t, "lt-") {
			in.LaunchTemplate.LaunchTemplateId = aws.String(t)
		} else {
			in.LaunchTemplate.LaunchTemplateName = aws.String(t)
		}
	}
	if instanceType != "" {
		in.InstanceType = types.InstanceType(instanceType)
	}
	if subnet != "" {
		in.SubnetId = aws.String(subnet)
	}
	if p.cfg.KeyName != "" {
		in.KeyName = aws.String(p.cfg.KeyName)
	}
	return in
}

// running waits, with the SDK's instance-running waiter, for an instance
// to run and returns it as a server; one that terminated instead says why.
func (p *Provider) running(ctx context.Context, spec providers.Spec, id string) (providers.Server, error) {
	w := ec2.NewInstanceRunningWaiter(p.api, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = p.Poll, max(p.Poll, 5*time.Second)
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, p.RunningWait)
	if err != nil {
		why := err.Error()
		if found, ferr := p.find(ctx, []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}); ferr == nil && len(found) == 1 {
			i := found[0]
			why = string(i.State.Name)
			if i.StateReason != nil {
				why += ": " + aws.ToString(i.StateReason.Message)
			}
		}
		return providers.Server{}, fmt.Errorf("instance %s of server %s did not reach running (%s)", id, spec.Name, why)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			return providers.Server{ID: spec.Name, Address: aws.ToString(i.PrivateIpAddress), Owner: spec.Owner}, nil
		}
	}
	return providers.Server{}, fmt.Errorf("instance %s of server %s vanished", id, spec.Name)
}

// Get returns the live instance of server id.
func (p *Provider) Get(ctx context.Context, id string) (providers.Server, error) {
	found, err := p.find(ctx, []types.Filter{tagFilter(TagServer, id), tagFilter(TagOwner, p.manager), live})
	if err != nil {
		return providers.Server{}, err
	}
	if len(found) == 0 {
		return providers.Server{}, fmt.Errorf("%w: no live instance of server %s", providers.ErrNotFound, id)
	}
	return server(found[0]), nil
}

// List returns the live instances of owner.
func (p *Provider) List(ctx context.Context, owner string) ([]providers.Server, error) {
	found, err := p.find(ctx, []types.Filter{tagFilter(TagOwner, owner), live})
	if err != nil {
		return nil, err
	}
	out := []providers.Server{}
	for _, i := range found {
		out = append(out, server(i))
	}
	slices.SortFunc(out, func(a, b providers.Server) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete terminates every live instance of server id; none is success.
func (p *Provider) Delete(ctx context.Context, id string) error {
	found, err := p.find(ctx, []types.Filter{tagFilter(TagServer, id), tagFilter(TagOwner, p.manager), live})
	if err != nil {
		return err
	}
	var ids []string
	for _, i := range found {
		ids = append(ids, *i.InstanceId)
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil && code(err) != "InvalidInstanceID.NotFound" {
		return classify("terminating "+strings.Join(ids, ", "), err)
	}
	return nil
}

// live keeps the instances that are, or are becoming, a server.
var live = types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}}

func tagFilter(key, value string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + key), Values: []string{value}}
}

// find returns every instance matching filters, across pages.
func (p *Provider) find(ctx context.Context, filters []types.Filter) ([]types.Instance, error) {
	var out []types.Instance
	pages := ec2.NewDescribeInstancesPaginator(p.api, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("describing instances", err)
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

func server(i types.Instance) providers.Server {
	s := providers.Server{Address: aws.ToString(i.PrivateIpAddress)}
	for _, t := range i.Tags {
		switch aws.ToString(t.Key) {
		case TagServer:
			s.ID = aws.ToString(t.Value)
		case TagOwner:
			s.Owner = aws.ToString(t.Value)
		}
	}
	return s
}

// clientToken is the idempotency token of one launch attempt: the same
// key, type and subnet always give the same token (at most 64 ASCII
// characters), so a retried attempt returns the instance it made.
func clientToken(key, instanceType, subnet string) *string {
	sum := sha256.Sum256([]byte(key + "\x00" + instanceType + "\x00" + subnet))
	return aws.String("msm-" + hex.EncodeToString(sum[:])[:48])
}

// code is the API error code in err, or "".
func code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// classify marks the errors that retrying cannot fix (bad settings,
// missing permissions) as permanent, naming the setting to change.
func classify(what string, err error) error {
	c := code(err)
	switch {
	case c == "InvalidInstanceType":
		return providers.Permanent(fmt.Errorf("%s: an instance type of manager.ec2.instance_types does not exist in this region, %w", what, err))
	case strings.HasPrefix(c, "InvalidAMIID"):
		return providers.Permanent(fmt.Errorf("%s: manager.ec2.ami is not an image this account can launch; check the ID and region, %w", what, err))
	case strings.HasPrefix(c, "InvalidSubnetID"):
		return providers.Permanent(fmt.Errorf("%s: a subnet of manager.ec2.subnets does not exist in this region, %w", what, err))
	case strings.HasPrefix(c, "InvalidGroup"):
		return providers.Permanent(fmt.Errorf("%s: a group of manager.ec2.security_groups does not exist, %w", what, err))
	case strings.HasPrefix(c, "InvalidLaunchTemplate"):
		return providers.Permanent(fmt.Errorf("%s: manager.ec2.launch_template does not exist, %w", what, err))
	case c == "InvalidParameterValue", c == "InvalidParameterCombination", c == "UnauthorizedOperation", c == "AuthFailure",
		c == "IdempotentParameterMismatch", strings.HasPrefix(c, "InvalidKeyPair"):
		return providers.Permanent(fmt.Errorf("%s, %w", what, err))
	}
	return fmt.Errorf("%s, %w", what, err)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
