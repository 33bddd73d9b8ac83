// Test tool of pnc-bridge: prints the schema-informed grammars precompiled into the
// EXIficient jar of the exi-oracle (../shared/tools/exi-oracle) as JSON lines, so the
// tests can compare our generated grammars with them state by state.
// Usage: java -cp EXICodec.jar:. GrammarDump <grammar class>   (one JSON object per grammar)
import com.siemens.ct.exi.core.datatype.Datatype;
import com.siemens.ct.exi.core.datatype.EnumerationDatatype;
import com.siemens.ct.exi.core.datatype.NBitUnsignedIntegerDatatype;
import com.siemens.ct.exi.core.grammars.Grammars;
import com.siemens.ct.exi.core.grammars.event.Attribute;
import com.siemens.ct.exi.core.grammars.event.Characters;
import com.siemens.ct.exi.core.grammars.event.Event;
import com.siemens.ct.exi.core.grammars.event.StartElement;
import com.siemens.ct.exi.core.grammars.grammar.Grammar;
import com.siemens.ct.exi.core.grammars.production.Production;

import java.util.*;

public final class GrammarDump {
    static final IdentityHashMap<Grammar, Integer> ids = new IdentityHashMap<>();
    static final ArrayDeque<Grammar> todo = new ArrayDeque<>();

    static int id(Grammar g) {
        if (g == null) return -1;
        Integer i = ids.get(g);
        if (i == null) { i = ids.size(); ids.put(g, i); todo.add(g); }
        return i;
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) { if (c == '"' || c == '\\') b.append('\\'); b.append(c); }
        return b.append('"').toString();
    }

    static String dt(Datatype d) {
        if (d == null) return "null";
        StringBuilder b = new StringBuilder("{\"type\":" + q(d.getBuiltInType().toString()));
        if (d instanceof NBitUnsignedIntegerDatatype) {
            NBitUnsignedIntegerDatatype n = (NBitUnsignedIntegerDatatype) d;
            b.append(",\"lo\":" + q(n.getLowerBound().toString()) + ",\"hi\":" + q(n.getUpperBound().toString()));
        }
        if (d instanceof EnumerationDatatype) {
            b.append(",\"n\":" + ((EnumerationDatatype) d).getEnumerationSize());
        }
        return b.append("}").toString();
    }

    public static void main(String[] args) throws Exception {
        Grammars gs = (Grammars) Class.forName(args[0]).getDeclaredConstructor().newInstance();
        id(gs.getDocumentGrammar());
        id(gs.getFragmentGrammar());
        StringBuilder out = new StringBuilder();
        while (!todo.isEmpty()) {
            Grammar g = todo.poll();
            out.append("{\"id\":").append(ids.get(g)).append(",\"kind\":").append(q(g.getGrammarType().toString()))
               .append(",\"prods\":[");
            for (int i = 0; i < g.getNumberOfEvents(); i++) {
                Production p = g.getProduction(i);
                Event e = p.getEvent();
                if (i > 0) out.append(',');
                out.append("{\"ev\":").append(q(e.getEventType().toString())).append(",\"next\":").append(id(p.getNextGrammar()));
                if (e instanceof StartElement) {
                    StartElement se = (StartElement) e;
                    out.append(",\"ns\":").append(q(se.getQName().getNamespaceURI())).append(",\"name\":").append(q(se.getQName().getLocalPart()))
                       .append(",\"grammar\":").append(id(se.getGrammar()));
                } else if (e instanceof Attribute) {
                    Attribute a = (Attribute) e;
                    out.append(",\"ns\":").append(q(a.getQName().getNamespaceURI())).append(",\"name\":").append(q(a.getQName().getLocalPart()))
                       .append(",\"dt\":").append(dt(a.getDatatype()));
                } else if (e instanceof Characters) {
                    out.append(",\"dt\":").append(dt(((Characters) e).getDatatype()));
                }
                out.append('}');
            }
            out.append("]}\n");
        }
        System.out.print(out);
    }
}
