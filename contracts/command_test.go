package contracts

import (
	"encoding/json"
	"testing"
)

func sampleCommand() Command {
	o := sampleOutcome()
	return Command{
		Schema: CommandSchema, ID: o.ID, MessageID: o.MessageID,
		Target: "1234", Recipient: "1234@bugs.example.org", Command: "tag", Args: []string{"foo", "two words"},
		Position: 2, Count: 2, Line: 3, Sender: "alice@example.com", MailFrom: "alice@example.com", Trust: TrustStrong,
		ReceivedAt: o.ReceivedAt, Worker: o.Worker, TraceID: o.TraceID,
	}
}

func sampleReply() Reply {
	o := sampleOutcome()
	return Reply{
		Schema: ReplySchema, ID: o.ID, To: "bounces+alice@example.com", From: "alice@example.com",
		InReplyTo: o.MessageID, Subject: "Re: [Bug 1234] it crashes", Target: "1234", Trust: TrustStrong,
		Reason: "2 command lines failed; no command was carried out",
		Failures: []LineFailure{
			{Line: 2, Text: "frobnicate now", Error: `unknown command "frobnicate"`},
			{Line: 3, Text: "tag", Error: "tag takes at least 1 argument, not 0"},
		},
		OriginalSize: 70000,
		Original:     []byte("From: Alice <alice@example.com>\r\nTo: 1234@bugs.example.org\r\n\r\n"),
		Truncated:    true,
		ReceivedAt:   o.ReceivedAt, Worker: o.Worker, TraceID: o.TraceID,
	}
}

func TestCommandGolden(t *testing.T) {
	for name, v := range map[string]any{"command.v1.json": sampleCommand(), "reply.v1.json": sampleReply()} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, append(b, '\n'))
	}
	if got := CommandMsgID("01JDXAMPLE", 2); got != "01JDXAMPLE.2" {
		t.Errorf("CommandMsgID = %q", got)
	}
	if got := ReplyMsgID("01JDXAMPLE"); got != "01JDXAMPLE.reply" {
		t.Errorf("ReplyMsgID = %q", got)
	}
	if got := DefaultNames().CommandSubject("status"); got != "mail.command.status" {
		t.Errorf("CommandSubject = %q", got)
	}
}

// TestFrozenCommand decodes the command and reply events as their
// versions first had them, strictly, and checks what they say.
func TestFrozenCommand(t *testing.T) {
	var c Command
	decodeStrictly(t, "command.v1.first.json", frozen(t, "command.v1.first.json"), &c)
	if c.Schema != CommandSchema || c.ID != "01JDXAMPLE" || c.Target != "1234" || c.Command != "tag" ||
		len(c.Args) != 2 || c.Args[1] != "two words" || c.Position != 2 || c.Count != 2 || c.Trust != TrustStrong {
		t.Errorf("command %+v", c)
	}
	var r Reply
	decodeStrictly(t, "reply.v1.first.json", frozen(t, "reply.v1.first.json"), &r)
	if r.Schema != ReplySchema || r.To != "bounces+alice@example.com" || r.InReplyTo != "abc@example.com" || len(r.Failures) != 2 ||
		r.Failures[0].Line != 2 || !r.Truncated || r.OriginalSize != 70000 || string(r.Original[:5]) != "From:" {
		t.Errorf("reply %+v", r)
	}
}
