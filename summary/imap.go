package summary

import "github.com/emersion/go-imap/v2"

// BodyStructure is p as go-imap's body structure (RFC 9051 §7.5.2,
// BODYSTRUCTURE with its extension data).
func (p *Part) BodyStructure() imap.BodyStructure {
	var disp *imap.BodyStructureDisposition
	if p.Disposition != "" {
		disp = &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispParams}
	}
	if p.Type == "multipart" {
		bs := &imap.BodyStructureMultiPart{Subtype: p.Subtype, Extended: &imap.BodyStructureMultiPartExt{
			Params: p.Params, Disposition: disp, Language: p.Language, Location: p.Location,
		}}
		for _, c := range p.Children {
			bs.Children = append(bs.Children, c.BodyStructure())
		}
		return bs
	}
	bs := &imap.BodyStructureSinglePart{
		Type: p.Type, Subtype: p.Subtype, Params: p.Params, ID: p.ID, Description: p.Description,
		Encoding: p.Encoding, Size: uint32(min(p.Size, int64(^uint32(0)))),
		Extended: &imap.BodyStructureSinglePartExt{Disposition: disp, Language: p.Language, Location: p.Location},
	}
	if p.Message != nil {
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope: p.Message.Envelope, BodyStructure: p.Message.Body.BodyStructure(), NumLines: p.Lines,
		}
	}
	if p.Type == "text" {
		bs.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return bs
}
